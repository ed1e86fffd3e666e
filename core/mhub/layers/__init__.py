"""Layer primitives (Metalhead's ``Layers``), one concern per file."""
