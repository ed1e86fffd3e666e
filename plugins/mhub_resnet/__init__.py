"""First-party mhub plugin: the resnet family."""
