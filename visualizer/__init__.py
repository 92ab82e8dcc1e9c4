"""visualizer: watch a neural network learn, layer by layer."""
__version__ = "0.1.0"
