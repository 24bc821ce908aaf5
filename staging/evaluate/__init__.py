"""Evaluation: segmentation metrics and synthetic studio-shot ground truth."""
