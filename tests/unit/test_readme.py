"""The README's variable table says what meta/argument_specs.yml says."""
import os
import re

import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def readme_rows():
    rows = {}
    for line in open(os.path.join(ROOT, "README.md")):
        m = re.match(r"\| `(mysql_cluster_\w+)` \| (\w+) \| `([^`]*)` \|", line)
        if m:
            rows[m.group(1)] = (m.group(2), m.group(3))
    return rows


def test_every_role_variable_is_in_the_readme_and_no_other():
    spec = yaml.safe_load(open(os.path.join(ROOT, "roles/mysql_cluster/meta/argument_specs.yml")))
    options = spec["argument_specs"]["main"]["options"]
    rows = readme_rows()
    assert set(rows) == set(options)
    for name, (typ, default) in rows.items():
        assert typ == options[name]["type"], name
        if "default" in options[name] and not isinstance(options[name]["default"], (dict, list)):
            assert default == str(options[name]["default"]), name


def test_role_defaults_match_the_specs():
    spec = yaml.safe_load(open(os.path.join(ROOT, "roles/mysql_cluster/meta/argument_specs.yml")))
    options = spec["argument_specs"]["main"]["options"]
    defaults = yaml.safe_load(open(os.path.join(ROOT, "roles/mysql_cluster/defaults/main.yml")))
    assert set(defaults) == set(options)
    for name, value in defaults.items():
        if "default" in options[name]:
            assert value == options[name]["default"], name
