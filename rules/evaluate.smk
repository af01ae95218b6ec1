# Predictions -> exact match and ROUGE-L per instance, task, category and overall (NIv2's definitions).


rule evaluate:
    input:
        predictions=f"{R}/predictions/{{run}}.parquet",
        tasks=f"{R}/data/test/tasks.parquet",
    output:
        instances=f"{R}/metrics/{{run}}/instances.parquet",
        tasks=f"{R}/metrics/{{run}}/tasks.parquet",
        tasks_csv=f"{R}/metrics/{{run}}/tasks.csv",
        categories=f"{R}/metrics/{{run}}/categories.parquet",
        categories_csv=f"{R}/metrics/{{run}}/categories.csv",
        overall=f"{R}/metrics/{{run}}/overall.json",
    log:
        f"{R}/logs/evaluate/{{run}}.log",
    conda:
        "../envs/data.yaml"
    params:
        run=lambda wc: run_identity(wc.run),
        code=code("evaluate.py"),
    script:
        "../workflow_scripts/evaluate.py"
