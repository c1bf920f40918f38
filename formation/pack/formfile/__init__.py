"""The Formfile parser: a workload's Formfile to a FormfileSpec (formation.pack.spec), or a
FormfileError with every problem of the file, each at its line and column. Needs no node."""

from formation.pack.formfile.errors import FormfileError, Problem
from formation.pack.formfile.parser import MAX_BYTES, load_formfile, parse_formfile

__all__ = ["MAX_BYTES", "FormfileError", "Problem", "load_formfile", "parse_formfile"]
