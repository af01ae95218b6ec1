# NIv2 checkout -> tasks and instances tables, one job per split part (train = seen, test = unseen tasks).


rule ingest:
    input:
        split_list=lambda wc: split_list(wc.part),
        other_split_list=other_split_list,
        task_files=task_files,
        overrides=overrides_file(),
    output:
        tasks=f"{R}/data/{{part}}/tasks.parquet",
        instances=f"{R}/data/{{part}}/instances.parquet",
    log:
        f"{R}/logs/ingest/{{part}}.log",
    conda:
        "../envs/data.yaml"
    params:
        cfg=lambda wc: ingest_params(wc.part),
        code=code("ingest.py"),
    script:
        "../workflow_scripts/ingest.py"
