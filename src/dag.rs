//! The stage graph: a stable topological order and cycle detection.

use indexmap::IndexMap;

/// Orders nodes so that every node comes after what it needs. Among nodes that are ready at
/// the same time, file order wins, so the order is stable and predictable.
///
/// `needs` maps each node to its dependencies; unknown dependencies are ignored (validation
/// reports them). Returns the cycle when there is one.
pub fn order<'a>(needs: &IndexMap<&'a str, Vec<&'a str>>) -> Result<Vec<&'a str>, Vec<&'a str>> {
    if let Some(cycle) = find_cycle(needs) {
        return Err(cycle);
    }
    let mut done: Vec<&str> = Vec::with_capacity(needs.len());
    while done.len() < needs.len() {
        let next = needs
            .iter()
            .find(|(node, deps)| {
                !done.contains(node)
                    && deps
                        .iter()
                        .all(|d| done.contains(d) || !needs.contains_key(d))
            })
            .map(|(node, _)| *node);
        match next {
            Some(node) => done.push(node),
            None => unreachable!("no cycle was found, so some node must be ready"),
        }
    }
    Ok(done)
}

/// The first dependency cycle, as a path that starts and ends at the same node.
pub fn find_cycle<'a>(needs: &IndexMap<&'a str, Vec<&'a str>>) -> Option<Vec<&'a str>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    fn visit<'a>(
        node: &'a str,
        needs: &IndexMap<&'a str, Vec<&'a str>>,
        marks: &mut IndexMap<&'a str, Mark>,
        stack: &mut Vec<&'a str>,
    ) -> Option<Vec<&'a str>> {
        marks.insert(node, Mark::Active);
        stack.push(node);
        for dep in needs.get(node).into_iter().flatten() {
            match marks.get(dep).copied() {
                Some(Mark::Active) => {
                    let start = stack.iter().position(|n| n == dep).unwrap_or(0);
                    let mut cycle = stack[start..].to_vec();
                    cycle.push(dep);
                    return Some(cycle);
                }
                Some(Mark::New) => {
                    if let Some(cycle) = visit(dep, needs, marks, stack) {
                        return Some(cycle);
                    }
                }
                _ => {}
            }
        }
        stack.pop();
        marks.insert(node, Mark::Done);
        None
    }

    let mut marks: IndexMap<&str, Mark> = needs.keys().map(|k| (*k, Mark::New)).collect();
    for node in needs.keys() {
        if marks[node] == Mark::New
            && let Some(cycle) = visit(node, needs, &mut marks, &mut Vec::new())
        {
            return Some(cycle);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph<'a>(edges: &[(&'a str, &[&'a str])]) -> IndexMap<&'a str, Vec<&'a str>> {
        edges.iter().map(|(n, d)| (*n, d.to_vec())).collect()
    }

    #[test]
    fn orders_dependencies_first_keeping_file_order() {
        let g = graph(&[
            ("package", &["build"]),
            ("lint", &[]),
            ("build", &["test"]),
            ("test", &["lint"]),
            ("docs", &[]),
        ]);
        assert_eq!(
            order(&g).unwrap(),
            ["lint", "test", "build", "package", "docs"]
        );
    }

    #[test]
    fn names_the_cycle() {
        let g = graph(&[("a", &["c"]), ("b", &["a"]), ("c", &["b"]), ("d", &[])]);
        assert_eq!(find_cycle(&g).unwrap(), ["a", "c", "b", "a"]);
        assert!(order(&g).is_err());
        let self_loop = graph(&[("x", &["x"])]);
        assert_eq!(find_cycle(&self_loop).unwrap(), ["x", "x"]);
    }
}
