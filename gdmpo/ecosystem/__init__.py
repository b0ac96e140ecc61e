"""gdmpo's environments behind the interfaces the MARL field shares.

- :func:`gdmpo.ecosystem.pettingzoo.parallel_env`: PettingZoo's Parallel API, one copy per environment
  (what sumo-rl users reach RLlib, Stable-Baselines3 and the rest through); ``pip install gdmpo[pettingzoo]``.
- :func:`gdmpo.ecosystem.torchrl.batched_env`: a batched TorchRL ``EnvBase`` over ``B`` copies, one agent
  group (what BenchMARL and TorchRL's collectors take); ``pip install gdmpo[torchrl]``.
- :class:`gdmpo.ecosystem.benchmarl.GdmpoTask`: Catch-up, Slow-down and the 5x5 grid as BenchMARL tasks
  (MAPPO, IPPO, ... from BenchMARL on gdmpo's batched environments); ``pip install gdmpo[benchmarl]``.

Each adapter imports its library when it is used and names the extra to install when it is missing.
"""
