"""World-model environments: ``WorldModelEnv`` (gymnasium.Env), the natively batched
``WorldModelVectorEnv`` and a Stable-Baselines3 adapter for the vector env."""
