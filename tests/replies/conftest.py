"""The reply tests' scene (reply_scene.py) as a fixture for every module here."""

from reply_scene import sent

__all__ = ["sent"]
