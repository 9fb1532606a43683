//! Prints the CheckoutLink CustomResourceDefinition as YAML (`make crds` writes it to `crds/`).
//! `crdgen policy` prints the ValidatingAdmissionPolicy that checks `spec.metadata`.
#![forbid(unsafe_code)]

fn main() {
    match std::env::args().nth(1).as_deref() {
        None => print!("{}", checkout_link_operator::crd::crd_yaml()),
        Some("policy") => print!("{}", checkout_link_operator::crd::metadata_policy_yaml()),
        Some(other) => {
            eprintln!("usage: crdgen [policy]   (unknown argument {other:?})");
            std::process::exit(2);
        }
    }
}
