# SPDX-License-Identifier: GPL-2.0
"""A `kernel-doc` directive: the kernel-doc comments of one source file,
rendered by the kernel's own scripts/kernel-doc (from the headers of the
target kernel) and parsed as reStructuredText in place.

    .. kernel-doc:: kmod/hsp_input.c
"""

import os
import subprocess

from docutils import nodes
from docutils.statemachine import ViewList
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles


class KernelDoc(SphinxDirective):
    required_arguments = 1

    def run(self):
        source = os.path.join(self.config.hsp_kerneldoc_root, self.arguments[0])
        self.env.note_dependency(source)
        proc = subprocess.run(["perl", self.config.hsp_kerneldoc_script, "-rst", source],
                              capture_output=True, text=True)
        if proc.returncode != 0 or proc.stderr:
            raise self.error(f"kernel-doc {self.arguments[0]}: {proc.stderr.strip()}")
        lines = ViewList()
        for number, text in enumerate(proc.stdout.splitlines()):
            lines.append(text, source, number)
        container = nodes.section()
        container.document = self.state.document
        nested_parse_with_titles(self.state, lines, container)
        return container.children


def setup(app):
    app.add_config_value("hsp_kerneldoc_script", "", "env")
    app.add_config_value("hsp_kerneldoc_root", "", "env")
    app.add_directive("kernel-doc", KernelDoc)
    return {"parallel_read_safe": True}
