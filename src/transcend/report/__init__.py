"""Report: plots of the measurements beside the theory."""
