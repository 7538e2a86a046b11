"""Fine-tuning from the clickstream: examples, trials, evaluation, the gate and the registry."""
