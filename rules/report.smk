# Every run's metrics -> summary table (Markdown, CSV) and plots.


rule report:
    input:
        metrics=expand(f"{R}/metrics/{{run}}/tasks.parquet", run=run_paths()),
        random_expected=f"{R}/audit/random_expected.csv",
    output:
        md=f"{R}/report/summary.md",
        csv=report(
            f"{R}/report/summary.csv",
            caption="../report/summary.rst",
            category="Summary",
        ),
        scores=report(
            f"{R}/report/scores.png",
            caption="../report/scores.rst",
            category="Summary",
        ),
        categories=report(
            f"{R}/report/categories.png",
            caption="../report/categories.rst",
            category="Summary",
        ),
    log:
        f"{R}/logs/report.log",
    conda:
        "../envs/report.yaml"
    params:
        title=config["report"]["title"],
        code=code("report.py"),
    script:
        "../workflow_scripts/report.py"
