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


def tier_table():
    """The first cell of every row of the README's tier table."""
    text = open(os.path.join(ROOT, "README.md")).read()
    start = text.index("| test or scenario | landing tier (`make test`) |")
    rows = []
    for line in text[start:].splitlines()[2:]:
        if not line.startswith("|"):
            break
        rows.append(line.split("|")[1].strip())
    return rows


def test_the_tier_table_lists_every_test_file_and_scenario():
    import glob
    cells = " ".join(tier_table())
    named = set(re.findall(r"`([^`]+)`", cells))
    files = {os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "tests", "*", "**", "test_*.py"), recursive=True)}
    # A folder in the table covers the files below it.
    folders = {n for n in named if n.endswith("/")}
    missing = sorted(f for f in files if f not in named and not any(f.startswith(d) for d in folders))
    assert not missing, "test files missing from the README's tier table: %s" % missing
    scenarios = {os.path.basename(os.path.dirname(p)) for p in glob.glob(os.path.join(ROOT, "molecule", "*", "molecule.yml"))}
    rows = tier_table()
    listed = {m.group(1) for r in rows for m in [re.match(r"molecule `([\w-]+)`$", r)] if m}
    assert listed == scenarios, (listed, scenarios)


def test_the_reserved_settings_listed_are_the_roles():
    text = open(os.path.join(ROOT, "README.md")).read()
    start = text.index("<!-- reserved settings:")
    block = text[start:text.index("\n\n", start)]
    listed = re.findall(r"`([a-z_*]+)`", block)
    role = yaml.safe_load(open(os.path.join(ROOT, "roles/mysql_cluster/vars/main.yml")))
    assert listed == role["_mysql_cluster_reserved_settings"]
