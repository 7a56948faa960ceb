"""Rich renderers for stderr. Nothing else in ttc imports rich at run time."""
