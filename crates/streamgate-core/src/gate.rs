//! The gate: find the scheme, verify the credential, apply the policy, decide.

use crate::denial::Denial;
use crate::grant::{oversized_identity, Grant};
use crate::policy::{Hooks, Policy, RequestContext, RequestFacts};
use crate::schemes::{Credential, Scheme, SchemeKind, MAX_CREDENTIAL_BYTES};

/// The outcome of one check.
// One decision is made and dropped per request; boxing the common case would only add
// an allocation to the hot path.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// The request may pass.
    Allow {
        /// What the credential grants.
        grant: Grant,
        /// The normalized path and client IP the decision was made on.
        facts: RequestFacts,
    },
    /// The request is refused.
    Deny {
        /// Why.
        denial: Denial,
        /// What the credential claimed, when its signature verified.
        grant: Option<Box<Grant>>,
    },
}

impl Decision {
    /// Whether the request may pass.
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allow { .. })
    }

    /// The denial, if refused.
    pub fn denial(&self) -> Option<&Denial> {
        match self {
            Decision::Deny { denial, .. } => Some(denial),
            Decision::Allow { .. } => None,
        }
    }

    /// The verified grant, if the signature checked out.
    pub fn grant(&self) -> Option<&Grant> {
        match self {
            Decision::Allow { grant, .. } => Some(grant),
            Decision::Deny { grant, .. } => grant.as_deref(),
        }
    }
}

/// The configured schemes and policy. Which schemes are accepted is configuration; a
/// credential of a scheme that is not configured is refused as `unknown_key`.
#[derive(Default)]
pub struct Gate {
    /// Checks applied after verification.
    pub policy: Policy,
    schemes: Vec<Box<dyn Scheme>>,
}

impl core::fmt::Debug for Gate {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Schemes hold keys: show only which kinds are accepted.
        f.debug_struct("Gate").field("policy", &self.policy).field("accepted", &self.accepted()).finish()
    }
}

impl Gate {
    /// A gate with `policy` and no schemes yet.
    pub fn new(policy: Policy) -> Gate {
        Gate { policy, schemes: Vec::new() }
    }

    /// Accepts credentials of `scheme` (replacing an earlier one of the same kind).
    pub fn with_scheme(mut self, scheme: Box<dyn Scheme>) -> Gate {
        self.schemes.retain(|s| s.kind() != scheme.kind());
        self.schemes.push(scheme);
        self
    }

    /// The kinds of credential this gate accepts.
    pub fn accepted(&self) -> Vec<SchemeKind> {
        self.schemes.iter().map(|s| s.kind()).collect()
    }

    /// Decides on a request carrying `credential` at `now` (unix seconds).
    pub fn check(
        &self,
        credential: Option<&Credential>,
        ctx: &RequestContext,
        now: i64,
        hooks: &mut Hooks<'_>,
    ) -> Decision {
        // `verify` then `evaluate`, without moving the grant between them.
        let facts = match self.policy.resolve(ctx) {
            Ok(facts) => facts,
            Err(denial) => return Decision::Deny { denial, grant: None },
        };
        let grant = match self.verify_credential(credential, &facts) {
            Ok(grant) => grant,
            Err(denial) => return Decision::Deny { denial, grant: None },
        };
        match self.policy.evaluate(&grant, ctx, &facts, now, hooks) {
            Ok(()) => Decision::Allow { grant, facts },
            Err(denial) => Decision::Deny { denial, grant: Some(Box::new(grant)) },
        }
    }

    /// The request's facts when it may pass without a credential ([`Policy::public`]).
    pub fn public(&self, ctx: &RequestContext) -> Option<RequestFacts> {
        self.policy.public(ctx)
    }

    /// The first half of [`Gate::check`]: path, presence, size, scheme and signature. An
    /// adapter with asynchronous stores calls this, looks up what the grant names
    /// (revocations of its token id, the client IP), then calls [`Gate::evaluate`].
    pub fn verify(
        &self,
        credential: Option<&Credential>,
        ctx: &RequestContext,
    ) -> Result<(Grant, RequestFacts), Denial> {
        let facts = self.policy.resolve(ctx)?;
        let grant = self.verify_credential(credential, &facts)?;
        Ok((grant, facts))
    }

    /// [`Gate::verify`] past the path: presence, size, scheme and signature.
    fn verify_credential(&self, credential: Option<&Credential>, facts: &RequestFacts) -> Result<Grant, Denial> {
        let Some(credential) = credential.filter(|c| !c.value.trim().is_empty()) else {
            return Err(Denial::MissingToken);
        };
        if credential.value.len() > MAX_CREDENTIAL_BYTES {
            return Err(Denial::malformed(format!(
                "credential is {} bytes, over the {MAX_CREDENTIAL_BYTES}-byte limit",
                credential.value.len()
            )));
        }
        let Some(scheme) = self.schemes.iter().find(|s| s.kind() == credential.kind) else {
            return Err(Denial::UnknownKey { kid: Some(format!("no {} key configured", credential.kind)) });
        };
        let grant = scheme.verify(&credential.value, facts)?;
        match oversized_identity(grant.subject.as_deref(), grant.token_id.as_deref()) {
            Some((_, why)) => Err(Denial::malformed(why)),
            None => Ok(grant),
        }
    }

    /// The second half of [`Gate::check`]: every policy check on a verified grant.
    pub fn evaluate(
        &self,
        grant: Grant,
        ctx: &RequestContext,
        facts: RequestFacts,
        now: i64,
        hooks: &mut Hooks<'_>,
    ) -> Decision {
        match self.policy.evaluate(&grant, ctx, &facts, now, hooks) {
            Ok(()) => Decision::Allow { grant, facts },
            Err(denial) => Decision::Deny { denial, grant: Some(Box::new(grant)) },
        }
    }
}
