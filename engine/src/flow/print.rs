//! Printing a flow back into the string language: `parse_flow(&flow.to_string())` gives the
//! same tree (group names and policies, which strings cannot carry, are left out).

use std::fmt;

use super::{Flow, Leaf};

impl fmt::Display for Flow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_flow(self, f, false)
    }
}

impl fmt::Display for Leaf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Leaf::Name { name, .. } => f.write_str(name),
            Leaf::Task(h) => write!(f, "task#{}", h.index),
            Leaf::Group(h) => write!(f, "group#{}", h.index),
        }
    }
}

/// `in_seq`: the flow is an element of a `>>` chain, where a group needs parentheses.
fn write_flow(flow: &Flow, f: &mut fmt::Formatter<'_>, in_seq: bool) -> fmt::Result {
    match flow {
        Flow::Leaf(leaf) => write!(f, "{leaf}"),
        Flow::Seq(items) => {
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    f.write_str(" >> ")?;
                }
                // A chain inside a chain keeps its own parentheses so the tree reads back.
                let nested = matches!(item, Flow::Seq(_));
                if nested {
                    f.write_str("(")?;
                }
                write_flow(item, f, true)?;
                if nested {
                    f.write_str(")")?;
                }
            }
            Ok(())
        }
        Flow::Par(p) => {
            if in_seq || !p.is_plain() || p.items.len() < 2 {
                f.write_str("(")?;
            }
            for (i, item) in p.items.iter().enumerate() {
                if i > 0 {
                    f.write_str(" | ")?;
                }
                // A plain group inside a plain group would merge into it when read back.
                let nested = matches!(item, Flow::Par(_));
                if nested {
                    f.write_str("(")?;
                }
                write_flow(item, f, false)?;
                if nested {
                    f.write_str(")")?;
                }
            }
            if in_seq || !p.is_plain() || p.items.len() < 2 {
                f.write_str(")")?;
            }
            Ok(())
        }
    }
}
