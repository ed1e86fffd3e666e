"""The weights hub client: sources, verified cache, mirrors, offline mode and pretrained loading."""
