"""Joint-upsampling networks and baselines."""
