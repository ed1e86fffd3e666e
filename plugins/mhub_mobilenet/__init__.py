"""First-party mhub plugin: the mobilenet family."""
