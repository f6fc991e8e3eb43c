"""The saved model: the estimator, its ONNX export, and reading it back verified."""
