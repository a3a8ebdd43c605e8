"""scripts/gen_role_docs.py: README variable tables generated from meta/argument_specs.yml."""

import os
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "scripts", "gen_role_docs.py")

SPECS = textwrap.dedent(
    """\
    ---
    argument_specs:
      main:
        short_description: Demo role
        options:
          demo_port:
            type: int
            default: 80
            description: Port with a | pipe and C(code).
          demo_mode:
            type: str
            choices: [fast, safe]
            description: [How to run., "Second line with O(demo_port)."]
          demo_nested:
            type: dict
            description: Nested.
            options:
              inner:
                type: list
                elements: str
                required: true
                description: Inner list.
      other:
        short_description: Second entry point
        options: {}
    """
)


def run(roles_dir, *args):
    return subprocess.run(
        [sys.executable, SCRIPT, "--roles-dir", roles_dir, *args], capture_output=True, text=True, check=False
    )


@pytest.fixture
def roles(tmp_path):
    role = tmp_path / "demo"
    (role / "meta").mkdir(parents=True)
    (role / "defaults").mkdir()
    (role / "meta" / "argument_specs.yml").write_text(SPECS)
    (role / "defaults" / "main.yml").write_text("---\ndemo_mode: safe\ndemo_port: 80\n")
    return tmp_path


@pytest.mark.parametrize(
    "readme, kept",
    [
        (None, "# fleetguard.webshield.demo"),
        ("# Demo\n\nIntro text.\n", "Intro text."),
        ("# Demo\n\n<!-- BEGIN VARIABLES -->\nold table\n<!-- END VARIABLES -->\n\n## After\n", "## After"),
    ],
)
def test_generates_then_check_passes(roles, readme, kept):
    path = roles / "demo" / "README.md"
    if readme is not None:
        path.write_text(readme)
    assert run(str(roles), "--check").returncode == 1
    assert run(str(roles)).returncode == 0
    text = path.read_text()
    assert kept in text
    assert "old table" not in text
    assert text.count("<!-- BEGIN VARIABLES -->") == 1
    check = run(str(roles), "--check")
    assert check.returncode == 0, check.stderr


@pytest.mark.parametrize(
    "row",
    [
        "| `demo_port` | int | `80` |  | Port with a \\| pipe and `code`. |",
        "| `demo_mode` | str | `safe` |  | How to run. Second line with `demo_port`. Choices: `fast`, `safe`. |",
        "| `demo_nested.inner` | list of str |  | yes | Inner list. |",
        "### Entry point `other`",
        "This entry point takes no variables.",
    ],
)
def test_table_rows(roles, row):
    assert run(str(roles)).returncode == 0
    assert row in (roles / "demo" / "README.md").read_text()


def test_check_names_the_stale_readme(roles):
    assert run(str(roles)).returncode == 0
    specs = roles / "demo" / "meta" / "argument_specs.yml"
    specs.write_text(specs.read_text().replace("default: 80", "default: 8080"))
    check = run(str(roles), "--check")
    assert check.returncode == 1
    assert "demo/README.md" in check.stderr


@pytest.mark.parametrize("role", ["report", "blocklist_schedule"])
def test_readmes_of_these_roles_are_current(role):
    # CI runs `scripts/gen_role_docs.py --check` over every role.
    check = run(os.path.join(ROOT, "roles"), "--check", role)
    assert check.returncode == 0, check.stderr
