"""One option-file quoting rule: the pods' opt_quote (lib.sh) and the
modules' option_file (module_utils/sql.py, option_quote) write the same bytes for every
value a password may hold (the role refuses NUL and line breaks)."""
import os
import re
import subprocess

import pytest

from ansible_collections.stateful.mysql.plugins.module_utils.sql import option_file

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
LIB = open(os.path.join(ROOT, "roles/mysql_cluster/files/scripts/lib.sh")).read()
# The function as lib.sh defines it (lib.sh itself needs a pod to be sourced).
OPT_QUOTE = re.search(r"^opt_quote\(\) \{\n.*?^\}\n", LIB, re.M | re.S).group(0)
VALUES = [
    "plain", "", "with space", "#hash", "a;b", "it's", 'say "hi"', "back\\slash", "\\\"", "end\\",
    "R'o\"ot`$(id)\\ #;--%&*|<>!~{}[]=+?:,.^@ x y z\\'\"end", "tab\there", "ünï©ødé",
]


@pytest.mark.parametrize("value", VALUES)
def test_pods_and_modules_quote_alike(value):
    proc = subprocess.run(["bash", "-c", OPT_QUOTE + 'opt_quote "$1"', "quote", value],
                          capture_output=True, text=True, check=True)
    assert "password=" + proc.stdout == option_file("root", value).splitlines()[2]
