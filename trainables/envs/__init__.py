"""Environments: every form a user names an env in, resolved once, built for workers and
evaluation, and checked for real before training starts.

    names.py    what an env name refers to (`resolve_env`), and publishing a driver-only
                gymnasium id to the trial's processes
    context.py  `EnvContext`, the env_config a class or factory receives
    build.py    single envs and vector envs from a resolved env
    check.py    building, resetting and stepping one env, every problem one line
    errors.py   what env code raises, as one line naming the env
    atari.py    Atari games through ale-py's vector env, with the standard preprocessing
    partially_observed.py   rlsweep's own envs that need memory (StatelessCartPole, MemoryCue)
"""
