"""Rich renderers of the event stream (stderr) and of the compare table.

Strategies and the engine never import this package or rich.
"""
