//! The stage graph: a stable topological order and cycle detection.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

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
    // Kahn's algorithm, always taking the ready node that comes first in the file: linear in
    // the graph (a pipeline of 10,000 stages orders at once), and the same order as picking
    // the first ready node again and again.
    let mut waiting: Vec<usize> = vec![0; needs.len()];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); needs.len()];
    for (index, deps) in needs.values().enumerate() {
        let mut known: Vec<usize> = deps.iter().filter_map(|d| needs.get_index_of(d)).collect();
        known.sort_unstable();
        known.dedup();
        waiting[index] = known.len();
        for dep in known {
            dependents[dep].push(index);
        }
    }
    let mut ready: BinaryHeap<Reverse<usize>> = (0..needs.len())
        .filter(|i| waiting[*i] == 0)
        .map(Reverse)
        .collect();
    let mut done = Vec::with_capacity(needs.len());
    while let Some(Reverse(index)) = ready.pop() {
        if let Some((node, _)) = needs.get_index(index) {
            done.push(*node);
        }
        for &next in &dependents[index] {
            waiting[next] -= 1;
            if waiting[next] == 0 {
                ready.push(Reverse(next));
            }
        }
    }
    Ok(done)
}

/// The first dependency cycle, as a path that starts and ends at the same node. Iterative, so
/// a long chain of stages cannot overflow the stack.
pub fn find_cycle<'a>(needs: &IndexMap<&'a str, Vec<&'a str>>) -> Option<Vec<&'a str>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    let mut marks = vec![Mark::New; needs.len()];
    for root in 0..needs.len() {
        if marks[root] != Mark::New {
            continue;
        }
        // The path being walked: each node with the position of its next dependency.
        let mut path: Vec<(usize, usize)> = vec![(root, 0)];
        marks[root] = Mark::Active;
        while let Some(&mut (node, ref mut next)) = path.last_mut() {
            let deps = &needs[node];
            if *next == deps.len() {
                marks[node] = Mark::Done;
                path.pop();
                continue;
            }
            let dep = deps[*next];
            *next += 1;
            let Some(dep_index) = needs.get_index_of(dep) else {
                continue;
            };
            match marks[dep_index] {
                Mark::Active => {
                    let start = path.iter().position(|(n, _)| *n == dep_index).unwrap_or(0);
                    let mut cycle: Vec<&str> = path[start..]
                        .iter()
                        .filter_map(|(n, _)| needs.get_index(*n).map(|(name, _)| *name))
                        .collect();
                    cycle.push(dep);
                    return Some(cycle);
                }
                Mark::New => {
                    marks[dep_index] = Mark::Active;
                    path.push((dep_index, 0));
                }
                Mark::Done => {}
            }
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

    #[test]
    fn long_chains_order_without_recursion_or_quadratic_scans() {
        let names: Vec<String> = (0..200_000).map(|i| format!("s{i}")).collect();
        let g: IndexMap<&str, Vec<&str>> = names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let deps = if i + 1 < names.len() {
                    vec![names[i + 1].as_str()]
                } else {
                    vec![]
                };
                (n.as_str(), deps)
            })
            .collect();
        let ordered = order(&g).unwrap();
        assert_eq!(ordered.first(), Some(&"s199999"));
        assert_eq!(ordered.last(), Some(&"s0"));
    }
}
