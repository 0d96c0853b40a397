//! `>>` and `|` on task handles, group handles and flows. Rust gives `>>` a higher precedence
//! than `|`, exactly like the string grammar: `a >> b | c >> d` is a group of two chains.

use std::ops::{BitOr, Shr};

use super::{Flow, GroupHandle, TaskHandle};

macro_rules! flow_operators {
    ($($ty:ty),*) => {$(
        impl<R: Into<Flow>> Shr<R> for $ty {
            type Output = Flow;
            fn shr(self, rhs: R) -> Flow {
                Flow::from(self).then(rhs)
            }
        }
        impl<R: Into<Flow>> BitOr<R> for $ty {
            type Output = Flow;
            fn bitor(self, rhs: R) -> Flow {
                Flow::from(self).par(rhs)
            }
        }
    )*};
}

flow_operators!(TaskHandle, GroupHandle, Flow);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::{Leaf, ParFlow};

    fn t(i: u32) -> TaskHandle {
        TaskHandle {
            builder: 0,
            index: i,
        }
    }

    fn shape(f: &Flow) -> String {
        match f {
            Flow::Leaf(Leaf::Task(h)) => format!("t{}", h.index),
            Flow::Leaf(Leaf::Group(h)) => format!("g{}", h.index),
            Flow::Leaf(Leaf::Name { name, .. }) => name.clone(),
            Flow::Seq(items) => {
                let v: Vec<String> = items.iter().map(shape).collect();
                format!("[{}]", v.join(" >> "))
            }
            Flow::Par(ParFlow { items, .. }) => {
                let v: Vec<String> = items.iter().map(shape).collect();
                format!("({})", v.join(" | "))
            }
        }
    }

    #[test]
    fn precedence_matches_the_string_grammar() {
        let (a, b, c, d) = (t(0), t(1), t(2), t(3));
        assert_eq!(shape(&(a >> b | c >> d)), "([t0 >> t1] | [t2 >> t3])");
        assert_eq!(shape(&(a >> (b | c) >> d)), "[t0 >> (t1 | t2) >> t3]");
        assert_eq!(shape(&(a | b | c)), "(t0 | t1 | t2)");
        assert_eq!(shape(&(a >> b >> c)), "[t0 >> t1 >> t2]");
    }

    #[test]
    fn named_groups_are_not_merged() {
        let (a, b, c) = (t(0), t(1), t(2));
        let f = (a | b).named("g") | c;
        assert_eq!(shape(&f), "((t0 | t1) | t2)");
    }
}
