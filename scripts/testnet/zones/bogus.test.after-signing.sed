# The MX record was signed as "10 mx2.signed.test."; serving it as
# "10 mx1.signed.test." leaves its RRSIG invalid.
s/(IN[[:space:]]+MX[[:space:]]+)10 mx2\.signed\.test\./\110 mx1.signed.test./
