"""`staging init`: find an app's settings, worker, workflows and setup in its code."""
