// Post pages: the compose form (kind fields, images, live preview) and the calendar's drag and drop.
"use strict";
(() => {
  const MAX_BYTES = 10 * 1024 * 1024;
  const MAX_IMAGES = 10;
  const TYPES = ["image/jpeg", "image/png"];
  const fmt = (n) => n.toLocaleString("vi-VN");
  const urls = new WeakMap();
  const urlOf = (file) => {
    if (!urls.has(file)) urls.set(file, URL.createObjectURL(file));
    return urls.get(file);
  };

  // ---- compose: the kind's own fields and its usual time --------------------------------------

  function kindFields(form) {
    const select = form.querySelector("[data-kind-select]");
    if (!select) return;
    const times = JSON.parse(select.dataset.defaultTimes || "{}");
    const time = form.querySelector("[data-time-input]");
    let timeTouched = false;
    if (time) time.addEventListener("input", () => { timeTouched = true; });
    const show = () => {
      form.querySelectorAll("[data-kinds]").forEach((box) => {
        box.hidden = !box.dataset.kinds.split(" ").includes(select.value);
      });
    };
    select.addEventListener("change", () => {
      show();
      if (time && !timeTouched && times[select.value]) time.value = times[select.value];
    });
    show();
  }

  // ---- compose: images by button or drag and drop -------------------------------------------

  function dropZone(form, onChange) {
    const zone = form.querySelector("[data-dropzone]");
    const input = form.querySelector("[data-file-input]");
    const list = form.querySelector("[data-thumbs]");
    if (!zone || !input || !list) return () => [];
    zone.classList.add("enhanced");
    let files = [];
    let problems = [];

    const sync = () => {
      const bag = new DataTransfer();
      files.forEach((f) => bag.items.add(f));
      input.files = bag.files;
      list.replaceChildren();
      files.forEach((file, i) => {
        const item = document.createElement("li");
        const img = document.createElement("img");
        img.src = urlOf(file);
        img.alt = "";
        const name = document.createElement("span");
        name.textContent = `${file.name} · ${fmt(Math.ceil(file.size / 1024))} KB`;
        const remove = document.createElement("button");
        remove.type = "button";
        remove.className = "link";
        remove.textContent = "Bỏ";
        remove.setAttribute("aria-label", `Bỏ ảnh ${file.name}`);
        remove.addEventListener("click", () => { files.splice(i, 1); problems = []; sync(); });
        item.append(img, name, remove);
        list.append(item);
      });
      problems.forEach((text) => {
        const item = document.createElement("li");
        item.className = "field-error";
        item.textContent = text;
        list.append(item);
      });
      onChange();
    };

    const add = (incoming) => {
      problems = [];
      for (const file of incoming) {
        if (!TYPES.includes(file.type)) problems.push(`«${file.name}» không phải ảnh JPEG hoặc PNG.`);
        else if (file.size > MAX_BYTES) problems.push(`Ảnh «${file.name}» lớn hơn 10 MB.`);
        else if (files.length >= MAX_IMAGES) problems.push(`Tối đa ${MAX_IMAGES} ảnh mỗi bài.`);
        else files.push(file);
      }
      sync();
    };

    input.addEventListener("change", () => add(Array.from(input.files)));
    ["dragenter", "dragover"].forEach((type) => zone.addEventListener(type, (event) => {
      event.preventDefault();
      zone.classList.add("over");
    }));
    ["dragleave", "drop"].forEach((type) => zone.addEventListener(type, () => zone.classList.remove("over")));
    zone.addEventListener("drop", (event) => {
      event.preventDefault();
      add(Array.from(event.dataTransfer.files));
    });
    return () => files;
  }

  // ---- compose: live preview -------------------------------------------------------------------

  function payload(form, images) {
    const data = new FormData(form);
    const text = (name) => String(data.get(name) || "");
    return {
      kind: text("kind"), title: text("title"), body: text("body"), link: text("link"),
      hashtags: text("hashtags"), citation: text("citation"), as_of: text("as_of"),
      event_date: text("event_date"), place: text("place"),
      channels: data.getAll("channels").map(String),
      images: images().length + form.querySelectorAll("[data-kept-image]:checked").length,
    };
  }

  function showImages(box, files, kept) {
    box.replaceChildren();
    const sources = kept.map((el) => el.closest("label").querySelector("img").src)
      .concat(files.map(urlOf));
    sources.slice(0, 4).forEach((src) => {
      const img = document.createElement("img");
      img.src = src;
      img.alt = "";
      box.append(img);
    });
    box.dataset.count = String(Math.min(sources.length, 4));
    return sources;
  }

  function paint(section, result, form, files) {
    const kept = Array.from(form.querySelectorAll("[data-kept-image]:checked"));
    section.querySelectorAll("[data-pane]").forEach((pane) => {
      const keys = pane.dataset.pane.split(" ");
      const chosen = keys.filter((k) => result.channels[k] && result.channels[k].chosen);
      const main = result.channels[chosen[0] || keys[0]];
      pane.classList.toggle("off", chosen.length === 0);
      const count = pane.querySelector("[data-count]");
      count.textContent = chosen.length ? `${fmt(main.length)}/${fmt(main.limit)} ký tự` : "Không gửi kênh này";
      count.classList.toggle("bad", chosen.length > 0 && main.too_long);
      const text = pane.querySelector("[data-text]");
      if (text) text.textContent = main.text;
      const box = pane.querySelector("[data-images]");
      let sources = [];
      if (box) sources = showImages(box, files, kept);
      const warnings = pane.querySelector("[data-warnings]");
      warnings.replaceChildren();
      if (chosen.length) {
        main.warnings.forEach((w) => {
          const li = document.createElement("li");
          li.textContent = w;
          warnings.append(li);
        });
      }
      if (pane.dataset.pane === "zalo_broadcast") {
        const a = result.article;
        pane.querySelector("[data-title]").textContent = a.title || "Tiêu đề bài viết";
        pane.querySelector("[data-description]").textContent = a.description;
        const titleCount = pane.querySelector("[data-title-count]");
        titleCount.textContent = `Tiêu đề ${fmt(a.title_length)}/${fmt(a.title_limit)} ký tự · mô tả là đoạn đầu của bài`;
        titleCount.classList.toggle("bad", a.title_length > a.title_limit);
        const cover = pane.querySelector("[data-cover]");
        if (!sources.length) sources = showImages(document.createElement("div"), files, kept);
        cover.style.backgroundImage = sources.length ? `url("${sources[0]}")` : "";
        cover.classList.toggle("has-image", sources.length > 0);
      }
    });
  }

  function livePreview(form, images) {
    const section = document.querySelector("[data-preview]");
    if (!section) return () => {};
    const state = section.querySelector("[data-preview-state]");
    const counter = form.querySelector("[data-body-count]");
    let timer = null;
    let latest = 0;
    const run = async () => {
      const ticket = ++latest;
      try {
        const response = await fetch(form.dataset.previewUrl, {
          method: "POST",
          headers: { "Content-Type": "application/json", "X-CSRF-Token": window.cdbot.csrf() },
          body: JSON.stringify(payload(form, images)),
          credentials: "same-origin",
        });
        if (!response.ok) throw new Error(String(response.status));
        const result = await response.json();
        if (ticket !== latest) return;
        paint(section, result, form, images());
        state.textContent = "Bài hiện ra đúng như mỗi kênh sẽ nhận.";
        state.classList.remove("error");
      } catch (error) {
        state.textContent = "Chưa xem trước được (mất kết nối hoặc phiên đã hết); nội dung bạn soạn vẫn còn.";
        state.classList.add("error");
      }
    };
    const soon = () => {
      if (counter) counter.textContent = fmt(form.elements.body.value.length);
      clearTimeout(timer);
      timer = setTimeout(run, 350);
    };
    form.addEventListener("input", soon);
    form.addEventListener("change", soon);
    run();
    return soon;
  }

  function compose() {
    const form = document.querySelector("form.compose");
    if (!form) return;
    kindFields(form);
    let refresh = () => {};
    const images = dropZone(form, () => refresh());
    refresh = livePreview(form, images);
  }

  // ---- calendar: drag a post to another day --------------------------------------------------

  function calendar() {
    const grid = document.querySelector("[data-calendar]");
    if (!grid) return;
    const status = document.querySelector("[data-calendar-status]");
    const say = (text, bad) => {
      status.textContent = text;
      status.className = `flash ${bad ? "error" : "ok"}`;
      status.hidden = false;
    };
    let dragged = null;
    grid.addEventListener("dragstart", (event) => {
      const chip = event.target.closest("[data-post-id]");
      if (!chip || chip.getAttribute("draggable") !== "true") return;
      dragged = chip;
      chip.classList.add("dragging");
      event.dataTransfer.effectAllowed = "move";
      event.dataTransfer.setData("text/plain", chip.dataset.postId);
    });
    grid.addEventListener("dragend", () => {
      if (dragged) dragged.classList.remove("dragging");
      grid.querySelectorAll(".over").forEach((el) => el.classList.remove("over"));
      dragged = null;
    });
    grid.addEventListener("dragover", (event) => {
      const day = event.target.closest("[data-drop]");
      if (!day || !dragged) return;
      event.preventDefault();
      event.dataTransfer.dropEffect = "move";
      grid.querySelectorAll(".over").forEach((el) => el !== day && el.classList.remove("over"));
      day.classList.add("over");
    });
    grid.addEventListener("drop", async (event) => {
      const day = event.target.closest("[data-drop]");
      if (!day || !dragged) return;
      event.preventDefault();
      day.classList.remove("over");
      const chip = dragged;
      if (chip.closest("[data-date]") === day) return;
      const body = new URLSearchParams({ date: day.dataset.date, csrf_token: window.cdbot.csrf() });
      chip.classList.add("moving");
      try {
        const response = await fetch(`/posts/${chip.dataset.postId}/reschedule`, {
          method: "POST",
          headers: { "X-CSRF-Token": window.cdbot.csrf(), Accept: "application/json" },
          body,
          credentials: "same-origin",
        });
        const result = await response.json();
        if (!response.ok || !result.ok) throw new Error(result.error || "Không dời được bài.");
        day.querySelector("[data-posts]").append(chip.closest("li"));
        day.classList.remove("empty");
        say(result.message, false);
      } catch (error) {
        say(error.message || "Không dời được bài; hãy tải lại trang.", true);
      } finally {
        chip.classList.remove("moving");
      }
    });
  }

  // Forms that undo something ask first.
  document.addEventListener("submit", (event) => {
    const question = event.target.dataset && event.target.dataset.confirm;
    if (question && !window.confirm(question)) event.preventDefault();
  });

  document.addEventListener("DOMContentLoaded", () => { compose(); calendar(); });
})();
