# Every run's metrics -> summary table (Markdown, CSV) and plots.


rule report:
    input:
        metrics=expand(f"{R}/metrics/{{run}}/tasks.parquet", run=run_paths()),
        random_expected=f"{R}/audit/random_expected.csv",
    output:
        md=f"{R}/report/summary.md",
        csv=f"{R}/report/summary.csv",
        scores=f"{R}/report/scores.png",
        categories=f"{R}/report/categories.png",
    log:
        f"{R}/logs/report.log",
    conda:
        "../envs/pipeline.yaml"
    params:
        title=config["report"]["title"],
    script:
        "../workflow_scripts/report.py"
