"""The only modules that contain SQL."""
