# Prompt shards -> one fine-tuned checkpoint per model x training variant x instances per task x seed.


rule train:
    input:
        f"{R}/prompts/{{variant}}/train",
    output:
        directory(f"{R}/models/{{model}}/{{variant}}/n{{n}}/seed{{seed}}"),
    log:
        f"{R}/logs/train/{{model}}/{{variant}}/n{{n}}/seed{{seed}}.log",
    conda:
        "../envs/model.yaml"
    threads: job_resource("train", "threads")
    resources:
        mem_mb=job_resource("train", "mem_mb"),
        runtime=job_resource("train", "runtime"),
        gpu=lambda wc: int(uses_gpu(wc.model)),
    params:
        model=lambda wc: model_spec(wc.model),
        training=lambda wc: training_config(wc.model),
        code=code("train.py"),
        # Resume state of a killed job (not an output: Snakemake must not delete it on failure).
        resume_dir=f"{R}/resume/{{model}}/{{variant}}/n{{n}}/seed{{seed}}",
    script:
        "../workflow_scripts/train.py"
