# Model-free baselines and the audit of task types, label spaces and simplified definitions.


rule baseline:
    input:
        tasks=f"{R}/data/test/tasks.parquet",
        instances=f"{R}/data/test/instances.parquet",
    output:
        f"{R}/predictions/baselines/{{baseline}}.parquet",
    log:
        f"{R}/logs/baselines/{{baseline}}.log",
    conda:
        "../envs/data.yaml"
    params:
        # the majority baseline draws nothing: the data seed is a param of the random baseline only
        seed=lambda wc: config["seed"] if wc.baseline == "random" else None,
        code=code("baseline.py"),
    script:
        "../workflow_scripts/baseline.py"


rule audit:
    input:
        train=f"{R}/data/train/tasks.parquet",
        test=f"{R}/data/test/tasks.parquet",
        test_instances=f"{R}/data/test/instances.parquet",
    output:
        tasks=report(
            f"{R}/audit/tasks.csv",
            caption="../report/audit.rst",
            category="Audit",
        ),
        random=f"{R}/audit/random_expected.csv",
    log:
        f"{R}/logs/audit.log",
    conda:
        "../envs/data.yaml"
    params:
        simplified=config["simplified_definition"],
        code=code("audit.py"),
    script:
        "../workflow_scripts/audit.py"
