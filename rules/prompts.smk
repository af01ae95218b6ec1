# Tables -> prompt shards of one instruction variant (Tk-Instruct encoding), per split part.


rule prompts:
    input:
        tasks=f"{R}/data/{{part}}/tasks.parquet",
        instances=f"{R}/data/{{part}}/instances.parquet",
    output:
        directory(f"{R}/prompts/{{variant}}/{{part}}"),
    log:
        f"{R}/logs/prompts/{{variant}}/{{part}}.log",
    conda:
        "../envs/data.yaml"
    params:
        variant=lambda wc: config["variants"][wc.variant],
        simplified=lambda wc: simplified_templates(wc.variant),
        seed=lambda wc: prompt_seed(wc.variant, wc.part),
        code=code("prompts.py"),
    script:
        "../workflow_scripts/prompts.py"
