"""Test helper: a second version of any exercise file, with different code and the same math.

:func:`rewritten` renames every local variable, writes ``a @ b`` as ``np.matmul(a, b)`` and drops
comments and layout, so the grader must recognise a catalogued mistake (whose slip is the
record's ``edits``, ``minirnn/exercises/mistakes.py``) from the numbers, not from the text.
"""

from __future__ import annotations

import ast


class _Rewrite(ast.NodeTransformer):
    """Same math, different code: locals renamed, ``a @ b`` as ``np.matmul(a, b)``."""

    def visit_FunctionDef(self, node):
        params = {a.arg for a in node.args.args + node.args.kwonlyargs}
        assigned = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)
                    and isinstance(n.ctx, ast.Store)} - params
        for n in ast.walk(node):
            if isinstance(n, ast.Name) and n.id in assigned:
                n.id = f"my_{n.id}"
        self.generic_visit(node)
        return node

    def visit_BinOp(self, node):
        self.generic_visit(node)
        if isinstance(node.op, ast.MatMult):
            return ast.Call(ast.Attribute(ast.Name("np", ast.Load()), "matmul", ast.Load()),
                            [node.left, node.right], [])
        return node


def rewritten(source: str) -> str:
    tree = ast.fix_missing_locations(_Rewrite().visit(ast.parse(source)))
    return ast.unparse(tree) + "\n"
