"""Export pipeline: load -> prepare -> quantize -> lower -> validate -> write, one module per target."""
