#!/usr/bin/env bash
# Fetch the offline training photos (Debian wallpaper packages):
#   DIR (default data/corpus): the largest file of each plasma and mate wallpaper, as real photographs to crop from;
#   PHOTOS (default data/photos): the camera photographs of lomiri-wallpapers' Ubuntu 16.04 contest set and Kleiber
#   (CC-BY-4.0 / CC-BY-SA-4.0 / CC0; authors in the package's copyright file), textured scenes the smooth
#   wallpapers lack. Kept in their own folder so the corpus's validation split stays as it is.
set -euo pipefail
shopt -s nullglob
dest=${1:-data/corpus}
photos=${2:-data/photos}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$dest" "$photos"
(cd "$work" && apt-get download plasma-workspace-wallpapers mate-backgrounds lomiri-wallpapers-16.04 lomiri-wallpapers-20.04 >/dev/null)
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
# lomiri: photographs only (umang, Fossa, Infinite-Sea and Painting-Colors are illustrations).
for f in "$work"/x/usr/share/backgrounds/*_by_*.jpg; do
  case $(basename "$f") in umang_* | Fossa_* | Infinite-Sea_* | Painting-Colors_*) continue ;; esac
  cp "$f" "$photos/lomiri-$(basename "$f")"
done
echo "$(ls "$dest" | wc -l) images in $dest, $(ls "$photos" | wc -l) in $photos"
