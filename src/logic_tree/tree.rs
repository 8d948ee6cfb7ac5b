//! The logic tree of a strategy: `and` / `or` / `not` over condition leaves, compiled
//! into a flat array and evaluated with Kleene logic and short-circuit.
//!
//! Parsing is bounded before anything else: depth ≤ [`MAX_DEPTH`] and at most
//! [`MAX_NODES`] nodes, checked while descending, so a hostile tree costs at most that
//! much work. (The JSON itself is parsed with serde_json's recursion limit, so 100,000
//! nested `not`s are refused there without touching the stack.)

use serde_json::Value;

use super::Tri;
use crate::validation::ValidationError;

/// Deepest allowed root-to-leaf path, counting nodes.
pub const MAX_DEPTH: usize = 32;
/// Most nodes allowed in one tree.
pub const MAX_NODES: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Node {
    And {
        start: u16,
        len: u16,
    },
    Or {
        start: u16,
        len: u16,
    },
    Not(u16),
    /// Index into the strategy's conditions.
    Leaf(u16),
}

/// A compiled, validated logic tree. Node 0 is the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogicTree {
    nodes: Box<[Node]>,
    children: Box<[u16]>,
}

struct Builder<'r> {
    nodes: Vec<Node>,
    children: Vec<u16>,
    resolve: &'r dyn Fn(&str) -> Result<u16, String>,
}

impl LogicTree {
    /// Parses and validates `value` (the `logic_tree` JSON). `resolve` maps a condition
    /// id to the index of that condition in this strategy, or says why it cannot.
    pub fn parse(
        value: &Value,
        resolve: &dyn Fn(&str) -> Result<u16, String>,
    ) -> Result<Self, ValidationError> {
        let mut builder = Builder {
            nodes: Vec::new(),
            children: Vec::new(),
            resolve,
        };
        let mut path = String::from("logic_tree");
        builder.node(value, 1, &mut path)?;
        Ok(LogicTree {
            nodes: builder.nodes.into_boxed_slice(),
            children: builder.children.into_boxed_slice(),
        })
    }

    /// Evaluates the tree; `leaf(i)` evaluates condition `i` and is called only for the
    /// leaves short-circuit evaluation reaches, in tree order.
    pub fn evaluate(&self, leaf: &mut impl FnMut(u16) -> Tri) -> Tri {
        self.evaluate_node(0, leaf)
    }

    fn evaluate_node(&self, index: u16, leaf: &mut impl FnMut(u16) -> Tri) -> Tri {
        match self.nodes[usize::from(index)] {
            Node::Leaf(condition) => leaf(condition),
            Node::Not(child) => !self.evaluate_node(child, leaf),
            Node::And { start, len } => {
                let mut result = Tri::True;
                for &child in self.children_of(start, len) {
                    match self.evaluate_node(child, leaf) {
                        Tri::False => return Tri::False,
                        Tri::Unknown => result = Tri::Unknown,
                        Tri::True => {}
                    }
                }
                result
            }
            Node::Or { start, len } => {
                let mut result = Tri::False;
                for &child in self.children_of(start, len) {
                    match self.evaluate_node(child, leaf) {
                        Tri::True => return Tri::True,
                        Tri::Unknown => result = Tri::Unknown,
                        Tri::False => {}
                    }
                }
                result
            }
        }
    }

    fn children_of(&self, start: u16, len: u16) -> &[u16] {
        &self.children[usize::from(start)..usize::from(start) + usize::from(len)]
    }

    /// The condition indices of the leaves, in tree order.
    pub fn leaves(&self) -> impl Iterator<Item = u16> + '_ {
        self.nodes.iter().filter_map(|node| match node {
            Node::Leaf(c) => Some(*c),
            _ => None,
        })
    }

    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }
}

const NODE_SHAPE: &str = "a node must be an object with exactly one key: and, or, not or condition";

impl Builder<'_> {
    fn node(
        &mut self,
        value: &Value,
        depth: usize,
        path: &mut String,
    ) -> Result<u16, ValidationError> {
        if depth > MAX_DEPTH {
            return Err(ValidationError::new(
                path.clone(),
                format!("the tree is nested deeper than {MAX_DEPTH} levels"),
            ));
        }
        if self.nodes.len() >= MAX_NODES {
            return Err(ValidationError::new(
                "logic_tree",
                format!("the tree has more than {MAX_NODES} nodes"),
            ));
        }
        let object = match value {
            Value::Object(object) if object.len() == 1 => object,
            Value::Object(object) if object.len() > 1 => {
                let keys: Vec<&str> = object.keys().map(String::as_str).collect();
                return Err(ValidationError::new(
                    path.clone(),
                    format!("{NODE_SHAPE}; found {}", keys.join(", ")),
                ));
            }
            _ => return Err(ValidationError::new(path.clone(), NODE_SHAPE)),
        };
        let (key, inner) = object.iter().next().expect("one entry");
        let index = u16::try_from(self.nodes.len()).expect("bounded by MAX_NODES");
        let restore = path.len();
        path.push('.');
        path.push_str(key);
        let node = match key.as_str() {
            "and" | "or" => {
                let Value::Array(items) = inner else {
                    return Err(ValidationError::new(
                        path.clone(),
                        "must be a list of nodes",
                    ));
                };
                if items.is_empty() {
                    return Err(ValidationError::new(path.clone(), "must not be empty"));
                }
                // Reserve this node's slot so the root stays at index 0.
                self.nodes.push(Node::Leaf(0));
                let mut child_indices = Vec::with_capacity(items.len());
                let list_path = path.len();
                for (i, item) in items.iter().enumerate() {
                    path.push_str(&format!("[{i}]"));
                    child_indices.push(self.node(item, depth + 1, path)?);
                    path.truncate(list_path);
                }
                let start = u16::try_from(self.children.len()).expect("bounded by MAX_NODES");
                let len = u16::try_from(child_indices.len()).expect("bounded by MAX_NODES");
                self.children.extend(child_indices);
                self.nodes[usize::from(index)] = if key == "and" {
                    Node::And { start, len }
                } else {
                    Node::Or { start, len }
                };
                path.truncate(restore);
                return Ok(index);
            }
            "not" => {
                self.nodes.push(Node::Leaf(0));
                let child = self.node(inner, depth + 1, path)?;
                self.nodes[usize::from(index)] = Node::Not(child);
                path.truncate(restore);
                return Ok(index);
            }
            "condition" => {
                let Value::String(id) = inner else {
                    return Err(ValidationError::new(
                        path.clone(),
                        "must be a condition id (a string)",
                    ));
                };
                let condition = (self.resolve)(id)
                    .map_err(|message| ValidationError::new(path.clone(), message))?;
                Node::Leaf(condition)
            }
            other => {
                return Err(ValidationError::new(
                    path.clone(),
                    format!("unknown node `{other}`; {NODE_SHAPE}"),
                ));
            }
        };
        self.nodes.push(node);
        path.truncate(restore);
        Ok(index)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    /// Conditions are named by their index: "0", "1", …
    fn resolve(id: &str) -> Result<u16, String> {
        id.parse::<u16>()
            .ok()
            .filter(|&i| i < 50)
            .ok_or_else(|| format!("no condition {id} in this strategy"))
    }

    fn parse(value: Value) -> Result<LogicTree, ValidationError> {
        LogicTree::parse(&value, &resolve)
    }

    fn error(value: Value) -> String {
        parse(value).unwrap_err().to_string()
    }

    #[test]
    fn errors_name_the_json_path() {
        assert_eq!(
            error(json!({"and": [{"condition": "0"}, {"condition": "1"}, {"condition": "7f3"}]})),
            "logic_tree.and[2].condition: no condition 7f3 in this strategy"
        );
        assert_eq!(error(json!({"or": []})), "logic_tree.or: must not be empty");
        assert_eq!(
            error(json!({"and": [{"not": {"xor": []}}]})),
            "logic_tree.and[0].not.xor: unknown node `xor`; a node must be an object with exactly one key: and, or, not or condition"
        );
        assert!(error(json!({"and": [], "or": []})).starts_with("logic_tree: a node must be"));
        assert!(error(json!([1])).starts_with("logic_tree: a node must be"));
        assert_eq!(
            error(json!({"and": {"condition": "0"}})),
            "logic_tree.and: must be a list of nodes"
        );
        assert_eq!(
            error(json!({"condition": 7})),
            "logic_tree.condition: must be a condition id (a string)"
        );
    }

    fn nested_nots(levels: usize) -> Value {
        let mut value = json!({"condition": "0"});
        for _ in 0..levels {
            value = json!({ "not": value });
        }
        value
    }

    #[test]
    fn depth_is_limited_to_32() {
        assert!(parse(nested_nots(MAX_DEPTH - 1)).is_ok());
        let err = parse(nested_nots(MAX_DEPTH)).unwrap_err();
        assert!(err.message.contains("deeper than 32"), "{err}");
    }

    #[test]
    fn size_is_limited_to_256_nodes() {
        let leaves = |n: usize| {
            (0..n)
                .map(|i| json!({"condition": (i % 50).to_string()}))
                .collect::<Vec<_>>()
        };
        assert!(parse(json!({ "or": leaves(MAX_NODES - 1) })).is_ok());
        let err = parse(json!({ "or": leaves(MAX_NODES) })).unwrap_err();
        assert_eq!(
            err.to_string(),
            "logic_tree: the tree has more than 256 nodes"
        );
    }

    #[test]
    fn a_hostile_document_is_refused_by_the_json_parser_without_recursion() {
        let depth = 100_000;
        let text = format!(
            "{}{{\"condition\":\"0\"}}{}",
            "{\"not\":".repeat(depth),
            "}".repeat(depth)
        );
        let err = serde_json::from_str::<Value>(&text).unwrap_err();
        assert!(err.to_string().contains("recursion limit"), "{err}");
    }

    // --- Property: the evaluator equals a plain truth-table reference ---------------

    fn tri_strategy() -> impl Strategy<Value = Tri> {
        prop_oneof![Just(Tri::True), Just(Tri::False), Just(Tri::Unknown)]
    }

    fn tree_strategy() -> impl Strategy<Value = Value> {
        let leaf = (0u16..8).prop_map(|i| json!({"condition": i.to_string()}));
        leaf.prop_recursive(6, 64, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 1..5).prop_map(|v| json!({"and": v})),
                prop::collection::vec(inner.clone(), 1..5).prop_map(|v| json!({"or": v})),
                inner.prop_map(|v| json!({"not": v})),
            ]
        })
    }

    /// Kleene logic by truth table: order F < U < T, and = min, or = max, not flips.
    fn reference(value: &Value, leaves: &[Tri]) -> Tri {
        fn rank(t: Tri) -> u8 {
            match t {
                Tri::False => 0,
                Tri::Unknown => 1,
                Tri::True => 2,
            }
        }
        let (key, inner) = value.as_object().unwrap().iter().next().unwrap();
        match key.as_str() {
            "condition" => leaves[inner.as_str().unwrap().parse::<usize>().unwrap()],
            "not" => !reference(inner, leaves),
            "and" => inner
                .as_array()
                .unwrap()
                .iter()
                .map(|c| reference(c, leaves))
                .min_by_key(|t| rank(*t))
                .unwrap(),
            "or" => inner
                .as_array()
                .unwrap()
                .iter()
                .map(|c| reference(c, leaves))
                .max_by_key(|t| rank(*t))
                .unwrap(),
            _ => unreachable!(),
        }
    }

    /// The leaves a short-circuiting evaluation must visit, in order.
    fn reference_visits(value: &Value, leaves: &[Tri], visits: &mut Vec<u16>) -> Tri {
        let (key, inner) = value.as_object().unwrap().iter().next().unwrap();
        match key.as_str() {
            "condition" => {
                let i = inner.as_str().unwrap().parse::<u16>().unwrap();
                visits.push(i);
                leaves[usize::from(i)]
            }
            "not" => !reference_visits(inner, leaves, visits),
            "and" | "or" => {
                let stop = if key == "and" { Tri::False } else { Tri::True };
                let mut result = !stop;
                for child in inner.as_array().unwrap() {
                    match reference_visits(child, leaves, visits) {
                        t if t == stop => return stop,
                        Tri::Unknown => result = Tri::Unknown,
                        _ => {}
                    }
                }
                result
            }
            _ => unreachable!(),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn evaluation_matches_the_truth_table(
            tree in tree_strategy(),
            leaves in prop::collection::vec(tri_strategy(), 8),
        ) {
            let compiled = parse(tree.clone()).unwrap();
            let mut visited = Vec::new();
            let result = compiled.evaluate(&mut |i| { visited.push(i); leaves[usize::from(i)] });
            prop_assert_eq!(result, reference(&tree, &leaves));

            let mut expected_visits = Vec::new();
            reference_visits(&tree, &leaves, &mut expected_visits);
            prop_assert_eq!(visited, expected_visits, "short-circuit visits");
        }
    }
}
