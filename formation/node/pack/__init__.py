"""The pack part of the node: workload builds from Formfiles (component.py)."""
