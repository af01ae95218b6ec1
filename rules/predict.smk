# Checkpoints (or the untuned base model) x evaluation variant -> per-instance predictions.


rule predict:
    input:
        model=f"{R}/models/{{model}}/{{variant}}/n{{n}}/seed{{seed}}",
        prompts=f"{R}/prompts/{{eval_variant}}/test",
    output:
        f"{R}/predictions/{{model}}/{{variant}}/n{{n}}/seed{{seed}}/{{eval_variant}}.parquet",
    log:
        f"{R}/logs/predict/{{model}}/{{variant}}/n{{n}}/seed{{seed}}/{{eval_variant}}.log",
    conda:
        "../envs/model.yaml"
    threads: job_resource("predict", "threads")
    resources:
        mem_mb=job_resource("predict", "mem_mb"),
        runtime=job_resource("predict", "runtime"),
        gpu=lambda wc: int(uses_gpu(wc.model)),
    params:
        decoding=lambda wc: decoding_params(wc.model),
        code=code("predict.py"),
    script:
        "../workflow_scripts/predict.py"


rule predict_untuned:
    input:
        prompts=f"{R}/prompts/{{eval_variant}}/test",
    output:
        f"{R}/predictions/{{model}}/untuned/{{eval_variant}}.parquet",
    log:
        f"{R}/logs/predict/{{model}}/untuned/{{eval_variant}}.log",
    conda:
        "../envs/model.yaml"
    threads: job_resource("predict", "threads")
    resources:
        mem_mb=job_resource("predict", "mem_mb"),
        runtime=job_resource("predict", "runtime"),
        gpu=lambda wc: int(uses_gpu(wc.model)),
    params:
        model=lambda wc: model_spec(wc.model),
        seed=lambda wc: random_init_seed(wc.model),
        decoding=lambda wc: decoding_params(wc.model),
        code=code("predict.py"),
    script:
        "../workflow_scripts/predict.py"
