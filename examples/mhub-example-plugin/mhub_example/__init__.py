"""An example third-party mhub plugin: the ``tinynet`` family."""
