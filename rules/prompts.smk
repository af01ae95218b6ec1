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
        seed=config["seed"],
        tasks_per_shard=config["data"]["tasks_per_shard"],
    script:
        "../workflow_scripts/prompts.py"
