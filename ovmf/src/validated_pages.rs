//! Which 4 KiB pages of a range the guest has made its own: PVALIDATEd under SEV-SNP, accepted
//! (TDG.MEM.PAGE.ACCEPT) under TDX. Validating a page a second time would let a hypervisor that remapped it in
//! between substitute its contents (AMD64 APM vol. 2 §15.36.9), and a TD accepts each page once (Intel TDX module
//! base spec, "TD private memory: page acceptance"), so the guest marks each page once and refuses a second time;
//! the count is what tests read to prove "each page once".

/// A bitmap of validated pages over `first_frame .. first_frame + 64 * WORDS`.
pub struct ValidatedPages<const WORDS: usize> {
    first_frame: u64,
    bits: [u64; WORDS],
    count: usize,
}

/// Why a page was not marked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValidationError {
    /// The page was validated before.
    AlreadyValidated(u64),
    /// The page lies outside the tracked range.
    OutOfRange(u64),
}

impl<const WORDS: usize> ValidatedPages<WORDS> {
    /// Nothing validated yet, tracking frames from `first_frame` on.
    pub const fn new(first_frame: u64) -> Self {
        Self { first_frame, bits: [0; WORDS], count: 0 }
    }

    fn position(&self, frame: u64) -> Result<(usize, u64), ValidationError> {
        let index = frame.checked_sub(self.first_frame).filter(|&i| i < 64 * WORDS as u64);
        let index = index.ok_or(ValidationError::OutOfRange(frame))?;
        Ok(((index / 64) as usize, 1 << (index % 64)))
    }

    /// Records that `frame` is about to be validated; refuses a frame validated before (the caller then must not
    /// execute PVALIDATE).
    pub fn mark(&mut self, frame: u64) -> Result<(), ValidationError> {
        let (word, bit) = self.position(frame)?;
        if self.bits[word] & bit != 0 {
            return Err(ValidationError::AlreadyValidated(frame));
        }
        self.bits[word] |= bit;
        self.count += 1;
        Ok(())
    }

    /// Records that `frame`'s validation was rescinded (before sharing it), so it may be validated again later.
    pub fn unmark(&mut self, frame: u64) -> Result<(), ValidationError> {
        let (word, bit) = self.position(frame)?;
        if self.bits[word] & bit != 0 {
            self.bits[word] &= !bit;
            self.count -= 1;
        }
        Ok(())
    }

    /// Whether `frame` is validated.
    pub fn is_validated(&self, frame: u64) -> bool {
        self.position(frame).is_ok_and(|(word, bit)| self.bits[word] & bit != 0)
    }

    /// How many pages are validated now.
    pub fn count(&self) -> usize {
        self.count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_page_is_validated_once() {
        let mut pages = ValidatedPages::<2>::new(0x800);
        for frame in 0x800..0x880 {
            pages.mark(frame).unwrap();
        }
        assert_eq!(pages.count(), 128);
        assert_eq!(pages.mark(0x842), Err(ValidationError::AlreadyValidated(0x842)));
        assert_eq!(pages.mark(0x7ff), Err(ValidationError::OutOfRange(0x7ff)));
        assert_eq!(pages.mark(0x880), Err(ValidationError::OutOfRange(0x880)));
        assert_eq!(pages.count(), 128, "refusals change nothing");
        pages.unmark(0x842).unwrap();
        assert!(!pages.is_validated(0x842));
        pages.mark(0x842).unwrap();
        assert_eq!(pages.count(), 128);
    }
}
