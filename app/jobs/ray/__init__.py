"""Ray as the engine for corpus jobs, when ``BERTSCOPE_RAY_ADDRESS`` (or the CLI's ``--ray``) names a cluster.

- :mod:`.worker`: one copy of the model in a worker process, running shards (plain Python: no Ray import);
- :mod:`.tasks`: the explicit table of what a shard can be (index a slice of a batch plan, map a function
  over a slice of a job's items);
- :mod:`.engine`: connects, starts model workers per job, hands out shards, retries a lost worker's shard,
  stops the workers on Cancel. The only module that imports Ray; imported only when a cluster is set.
"""
