//! Turning documents into the passages `retrieve` nodes search.

/// Passages are paragraphs, with a Markdown heading kept on the paragraphs it introduces.
pub fn split_passages(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut heading = String::new();
    for block in text.split("\n\n").map(str::trim).filter(|b| !b.is_empty()) {
        if block.starts_with('#') && !block.contains('\n') {
            heading = block.trim_start_matches('#').trim().to_owned();
            continue;
        }
        out.push(if heading.is_empty() {
            block.to_owned()
        } else {
            format!("{heading}: {block}")
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::split_passages;

    #[test]
    fn paragraphs_carry_their_heading() {
        let text = "Intro line.\n\n# Benefits\n\nHealth from day one.\n\nDental after 3 months.\n\n## Laptop\n\nPick up at IT.\n";
        assert_eq!(
            split_passages(text),
            vec![
                "Intro line.",
                "Benefits: Health from day one.",
                "Benefits: Dental after 3 months.",
                "Laptop: Pick up at IT."
            ]
        );
        assert!(split_passages("\n\n  \n").is_empty());
    }
}
