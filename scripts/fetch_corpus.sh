#!/usr/bin/env bash
# Fetch the offline training corpus (Debian wallpaper packages) into DIR (default data/corpus):
# the largest file of each wallpaper, as real photographs to crop patches from.
set -euo pipefail
shopt -s nullglob
dest=${1:-data/corpus}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$dest"
(cd "$work" && apt-get download plasma-workspace-wallpapers mate-backgrounds >/dev/null)
for deb in "$work"/*.deb; do dpkg -x "$deb" "$work/x"; done
# plasma: one folder per wallpaper with several sizes -> keep the largest file.
for dir in "$work"/x/usr/share/wallpapers/*/contents/images; do
  name=$(basename "$(dirname "$(dirname "$dir")")")
  files=("$dir"/*.jpg "$dir"/*.png)
  [ ${#files[@]} -gt 0 ] || continue
  best=$(ls -S "${files[@]}" | head -n 1)
  cp "$best" "$dest/plasma-$name.${best##*.}"
done
# mate: nature photos are single files.
for f in "$work"/x/usr/share/backgrounds/mate/nature/*; do cp "$f" "$dest/mate-$(basename "$f")"; done
echo "$(ls "$dest" | wc -l) images in $dest"
