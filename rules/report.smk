# Every run's metrics -> summary table (Markdown, CSV) and plots; the configured comparisons -> claims table
# (verdicts with intervals over tasks) and the paper's figures.


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
        provenance=report(
            f"{R}/report/provenance.csv",
            caption="../report/provenance.rst",
            category="Provenance",
        ),
        claims_md=f"{R}/report/claims.md",
        claims=report(
            f"{R}/report/claims.csv",
            caption="../report/claims.rst",
            category="Claims",
        ),
        task_differences=report(
            f"{R}/report/task_differences.csv",
            caption="../report/task_differences.rst",
            category="Claims",
        ),
        eval_variant_effects_csv=f"{R}/report/eval_variant_effects.csv",
        forest=report(
            f"{R}/report/forest.png",
            caption="../report/forest.rst",
            category="Claims",
        ),
        curves=report(
            f"{R}/report/curves.png",
            caption="../report/curves.rst",
            category="Claims",
        ),
        eval_variant_effects=report(
            f"{R}/report/eval_variant_effects.png",
            caption="../report/eval_variant_effects.rst",
            category="Claims",
        ),
        task_shifts=report(
            f"{R}/report/task_shifts.png",
            caption="../report/task_shifts.rst",
            category="Claims",
        ),
    log:
        f"{R}/logs/report.log",
    conda:
        "../envs/report.yaml"
    params:
        title=config["report"]["title"],
        code=code("report.py"),
        comparisons=config["comparisons"],
        study=report_study(),
        statistics={
            "seed": config["report"].get("seed", config["seed"]),
            "n_resamples": config["report"]["n_resamples"],
        },
    script:
        "../workflow_scripts/report.py"
