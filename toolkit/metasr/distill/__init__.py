"""Distillation of the teacher into the student, and the multi-GPU plumbing it runs on."""
