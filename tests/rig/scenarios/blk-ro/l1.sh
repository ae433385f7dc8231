# 16 MiB of random data, attached read-only; it must come out unchanged.
scenario_pre() {
    head -c 16777216 /dev/urandom > "$img"
    RO_SHA=$(sha < "$img")
    disk "$img" readonly
}
scenario_post() {
    cmp_val read-sha "guest sha256 of the first 4 MiB read" "$(gv read-sha)" "sha256 of the image's first 4 MiB" "$(head -c 4194304 "$img" | sha)"
    cmp_val unchanged "image sha256 before" "$RO_SHA" "after" "$(sha < "$img")"
}
