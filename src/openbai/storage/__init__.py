"""Storage accounts and their volumes (blob containers, file shares) behind one interface."""
