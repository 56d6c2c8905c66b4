"""Build-time helpers of the minirnn docs site (not part of the installed library)."""
